import sys, os
import test_families as t
from interop_common import run_tests
sys.exit(run_tests([t.make_train_test(n) for n in ("llama_llama3", "mistral", "qwen2_tied", "qwen3")]))
