// Drives the gateway's big screen in Debian's chromium (headless) with
// puppeteer-core, for test_screen.py. Usage: node screen_driver.mjs URL.
// Commands on stdin, one per line; one JSON line answers each:
//   state                  window.screenState() and the counts the page shows
//   wait-seq N             until the page has applied record N (60 s at most)
//   wait-live true|false   until the page says it is (or is not) live
//   reload                 loads the page again (it starts from the gateway's open tickets)
//   shot PATH              a screenshot of the page
//   quit
import puppeteer from "puppeteer-core";
import readline from "node:readline";

const url = process.argv[2];
const browser = await puppeteer.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"],
});
const page = await browser.newPage();
const errors = [];
page.on("pageerror", e => errors.push(String(e)));
await page.setViewport({ width: 1600, height: 900 });
await page.goto(url + "/screen", { waitUntil: "load" });
await page.waitForFunction(() => window.screenState && window.screenState().live,
                           { timeout: 30000 });

// What the page shows in its district table, read from the DOM.
function shown() {
  const rows = {};
  for (const tr of document.querySelectorAll("#districts tr")) {
    const counts = {};
    for (const td of tr.querySelectorAll("[data-count]"))
      counts[td.dataset.count] = Number(td.textContent);
    rows[tr.dataset.district] = counts;
  }
  return { state: window.screenState(), districts: rows,
           seq: Number(document.getElementById("seq").textContent),
           live: document.getElementById("live").textContent };
}

const say = (o) => process.stdout.write(JSON.stringify(o) + "\n");
say({ ready: true });
const lines = readline.createInterface({ input: process.stdin });
for await (const line of lines) {
  const [command, arg] = line.trim().split(/\s+/, 2);
  try {
    if (command === "state") {
      await page.evaluate(() => new Promise(r => setTimeout(r, 300))); // one render round
      say({ ...(await page.evaluate(shown)), errors });
    } else if (command === "wait-seq") {
      await page.waitForFunction(n => window.screenState().seq >= n, { timeout: 60000 },
                                 Number(arg));
      say({ ok: true });
    } else if (command === "wait-live") {
      await page.waitForFunction(want => window.screenState().live === want,
                                 { timeout: 60000 }, arg === "true");
      say({ ok: true });
    } else if (command === "reload") {
      await page.reload({ waitUntil: "load" });
      await page.waitForFunction(() => window.screenState && window.screenState().live,
                                 { timeout: 30000 });
      say({ ok: true });
    } else if (command === "shot") {
      await page.screenshot({ path: arg });
      say({ ok: true });
    } else if (command === "quit") {
      break;
    } else {
      say({ error: `unknown command ${command}` });
    }
  } catch (e) {
    say({ error: String(e) });
  }
}
await browser.close();
