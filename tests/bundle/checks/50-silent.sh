#!/bin/bash
# Stand-in check: writes no result, only a log line.
# estimate-s: 5
echo "silent: something broke"
