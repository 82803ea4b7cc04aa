#!/bin/bash
# Stand-in check (tests/test_bundle.c): passes with nested figures.
# estimate-s: 5
. "$BUNDLE/check-lib.sh"
check_begin 10-pass
check_result pass pass '{"a":{"b":{"c":5}},"list":[1,2]}' 'fine, "quoted"'
