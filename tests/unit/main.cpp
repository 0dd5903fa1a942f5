// Entry point of the `unit_tests` executable: every tests/unit/*.cpp is linked into it.
// Run `unit_tests --help` for doctest's options (e.g. -tc="name*" to pick test cases).
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
