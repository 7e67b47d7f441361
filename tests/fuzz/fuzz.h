/* The entry point every fuzz target defines: libFuzzer calls it in the
 * fuzz build (meson -Dfuzz=true, clang), tests/fuzz/replay.c in every
 * other build (the regular suite replays the corpus through it). An input
 * must never crash it, leak or trip a sanitizer; what it returns is 0. */
#ifndef DISPATCH_FUZZ_H
#define DISPATCH_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
