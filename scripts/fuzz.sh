#!/usr/bin/env bash
set -euo pipefail
echo "fuzz: no targets yet"
