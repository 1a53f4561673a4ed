# model training tests
msbnb_add_test(test_backward_ops tests/model/test_backward_ops.c)
msbnb_add_test(test_grad_llama tests/model/test_grad_llama.c)
msbnb_add_test(test_finetune tests/model/test_finetune.c)

# Several adapters loaded at once, chosen per generate call: two tiny fine-tunes on different
# texts, then greedy generation with each, with none, and with the default (the last loaded).
set(_m ${MSBNB_SHARED_DIR}/models/stories260K)
set(_d ${MSBNB_SHARED_DIR}/data)
add_test(NAME cli_multi_adapter
  COMMAND sh -c "set -e
    w=$(mktemp -d); trap 'rm -rf $w' EXIT
    head -c 200000 ${_d}/austen.txt > $w/a.txt
    head -c 200000 ${_d}/tinystories_valid_head.txt > $w/t.txt
    $<TARGET_FILE:msbnb_cli> finetune ${_m}/hf $w/a.txt --out $w/austen --steps 40 --lr 4e-3 --batch 4 --seq 32 --eval-every 0 --quiet >/dev/null
    $<TARGET_FILE:msbnb_cli> finetune ${_m}/hf $w/t.txt --out $w/tiny --steps 40 --lr 4e-3 --batch 4 --seq 32 --eval-every 0 --quiet --seed 7 >/dev/null
    g() { $<TARGET_FILE:msbnb_cli> generate ${_m}/hf --quant nf4 --double-quant --adapter austen=$w/austen --adapter tiny=$w/tiny --steps 40 --prompt 'It was a' \"$@\" 2>/dev/null; }
    a=$(g --use austen); t=$(g --use tiny); n=$(g --use none); d=$(g)
    base=$($<TARGET_FILE:msbnb_cli> generate ${_m}/hf --quant nf4 --double-quant --steps 40 --prompt 'It was a' 2>/dev/null)
    test \"$a\" != \"$t\"; test \"$a\" != \"$n\"; test \"$t\" != \"$n\"
    test \"$n\" = \"$base\"
    test \"$d\" = \"$t\"")
set_tests_properties(cli_multi_adapter PROPERTIES ENVIRONMENT "OMP_WAIT_POLICY=passive")

# An interrupted `msbnb finetune` (--stop-at) resumed with --resume ends with the same adapter,
# byte for byte, as an uninterrupted run; a corrupt state.json is refused (exit 1).
add_test(NAME cli_resume
  COMMAND sh -c "set -e
    w=$(mktemp -d); trap 'rm -rf $w' EXIT
    head -c 100000 ${_d}/austen.txt > $w/a.txt
    ft() { $<TARGET_FILE:msbnb_cli> finetune ${_m}/hf $w/a.txt --steps 30 --batch 2 --seq 32 --eval-every 7 --optim adamw8bit --quiet \"$@\" >/dev/null; }
    ft --out $w/full
    ft --out $w/part --stop-at 20
    ! cmp -s $w/full/adapter_model.safetensors $w/part/adapter_model.safetensors
    ft --out $w/part --resume $w/part
    cmp $w/full/adapter_model.safetensors $w/part/adapter_model.safetensors
    echo '{\"step\": 5, \"rng\": \"zz\", \"dropout_step\": 1}' > $w/part/checkpoint/state.json
    rc=0; ft --out $w/part --resume $w/part 2>/dev/null || rc=$?; test $rc = 1")
set_tests_properties(cli_resume PROPERTIES ENVIRONMENT "OMP_WAIT_POLICY=passive")
msbnb_add_test(test_train_compute tests/model/test_train_compute.c)
