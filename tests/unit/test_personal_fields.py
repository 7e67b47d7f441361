#!/usr/bin/env python3
"""Tests for proto/personal_fields.py on small .proto files written here.

Usage: test_personal_fields.py PERSONAL_FIELDS_PY PROTOC_C
"""

import os
import subprocess
import sys
import tempfile
import unittest

SCRIPT = None
PROTOC_C = None


def generate(proto_text):
    """Runs protoc-c and the generator on proto_text: (exit status, stderr, C source)."""
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, "probe.proto"), "w", encoding="utf-8") as out:
            out.write(proto_text)
        descriptor_set = os.path.join(tmp, "probe.descriptor-set")
        subprocess.run(
            [PROTOC_C, f"--proto_path={tmp}", "--include_source_info",
             f"--descriptor_set_out={descriptor_set}", "probe.proto"],
            check=True,
        )
        out_c, out_h = os.path.join(tmp, "fields.c"), os.path.join(tmp, "fields.h")
        run = subprocess.run([sys.executable, SCRIPT, descriptor_set, out_c, out_h],
                             capture_output=True, text=True)
        source = ""
        if run.returncode == 0:
            with open(out_c, encoding="utf-8") as generated:
                source = generated.read()
        return run.returncode, run.stderr, source


HEAD = 'syntax = "proto3";\npackage probe;\n'


class PersonalFieldsTest(unittest.TestCase):
    def test_marks_become_rows(self):
        status, stderr, source = generate(HEAD + """
message Caller {
  string phone = 3;  // <= 20; personal: phone
  string nick = 4;   // personal:name
  string note = 5;   // not personal
  message Home {
    string street = 1;  // personal: address
  }
  repeated string remarks = 6;  // <= 2000; personal: text
}
""")
        self.assertEqual(status, 0, stderr)
        self.assertIn('{"probe.Caller", 3, "phone", PERSONAL_PHONE}', source)
        self.assertIn('{"probe.Caller", 4, "nick", PERSONAL_NAME}', source)
        self.assertIn('{"probe.Caller.Home", 1, "street", PERSONAL_ADDRESS}', source)
        self.assertIn('{"probe.Caller", 6, "remarks", PERSONAL_TEXT}', source)
        self.assertNotIn('"note"', source)
        self.assertIn("personal_field_count = 4;", source)

    def test_a_clause_that_is_not_a_mark_is_refused(self):
        status, stderr, _ = generate(HEAD + """
message Caller {
  string name = 1;  // <= 64; personal data
}
""")
        self.assertEqual(status, 1)
        self.assertIn("Caller.name: 'personal data' is not an annotation", stderr)

    def test_unknown_kind_is_refused(self):
        status, stderr, _ = generate(HEAD + """
message Caller {
  string phone = 1;  // <= 20; personal: fone
}
""")
        self.assertEqual(status, 1)
        self.assertIn("probe.proto:5: Caller.phone: unknown personal kind 'fone' "
                      "(known: phone, name, address, text)", stderr)

    def test_mark_on_a_field_that_is_not_a_string_is_refused(self):
        status, stderr, _ = generate(HEAD + """
message Caller {
  int64 phone = 1;  // personal: phone
}
""")
        self.assertEqual(status, 1)
        self.assertIn("Caller.phone: only string fields can be marked personal", stderr)

    def test_mark_before_the_field_is_refused(self):
        status, stderr, _ = generate(HEAD + """
message Caller {
  // personal: phone
  string phone = 1;
}
""")
        self.assertEqual(status, 1)
        self.assertIn("Caller.phone: a personal annotation belongs in the comment after", stderr)

    def test_two_kinds_are_refused(self):
        status, stderr, _ = generate(HEAD + """
message Caller {
  string phone = 1;  // personal: phone; personal: name
}
""")
        self.assertEqual(status, 1)
        self.assertIn("more than one personal kind", stderr)

    def test_no_marks_gives_an_empty_table(self):
        status, stderr, source = generate(HEAD + "message Caller { string phone = 1; }\n")
        self.assertEqual(status, 0, stderr)
        self.assertIn("personal_field_count = 0;", source)


if __name__ == "__main__":
    SCRIPT, PROTOC_C = sys.argv[1], sys.argv[2]
    unittest.main(argv=sys.argv[:1], verbosity=2)
