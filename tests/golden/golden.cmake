# Golden logits against PyTorch for the GPT-2 and OPT graphs (fixtures made
# by tests/golden/make_gpt_opt.py; committed, nothing is downloaded).
add_executable(cmp_f32 ${CMAKE_CURRENT_LIST_DIR}/cmp_f32.c)
qc_target(cmp_f32)
target_link_libraries(cmp_f32 PRIVATE m)
foreach(name gpt2_tiny opt_tiny opt_postln_tiny)
  add_test(NAME golden_${name} COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/golden.sh ${name})
  set_tests_properties(golden_${name} PROPERTIES LABELS golden TIMEOUT 600 ENVIRONMENT
    "QCC=$<TARGET_FILE:qcc>;CMP=$<TARGET_FILE:cmp_f32>;SCRATCH=${CMAKE_BINARY_DIR}/golden-scratch")
endforeach()
# SmolLM2 (the demo model) against PyTorch: skipped (77) unless the GGUF is
# in tools/fetch_sample.sh's cache.
add_test(NAME golden_smollm2 COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/smollm2.sh)
set_tests_properties(golden_smollm2 PROPERTIES LABELS golden TIMEOUT 3600 SKIP_RETURN_CODE 77 ENVIRONMENT
  "QCC=$<TARGET_FILE:qcc>;CMP=$<TARGET_FILE:cmp_f32>;SCRATCH=${CMAKE_BINARY_DIR}/golden-scratch;DATA=${QC_DATA}")
