import sys, os
import test_families as t
from interop_common import run_tests
sys.exit(run_tests([t.make_bnb_test(n) for n in ("llama", "mistral", "qwen2_untied", "qwen3")]))
