# Unit tests of the frontend parsers (JSON, safetensors, config.json).
qc_c_test(test_json ${CMAKE_CURRENT_LIST_DIR}/test_json.c unit qc_frontend)
qc_c_test(test_safetensors ${CMAKE_CURRENT_LIST_DIR}/test_safetensors.c unit qc_frontend)
# test_safetensors checks qc_st_hash against a one-shot XXH3-128 of the files.
target_include_directories(test_safetensors PRIVATE ${XXHASH_INCLUDE})
target_compile_definitions(test_safetensors PRIVATE XXH_INLINE_ALL)
qc_c_test(test_config ${CMAKE_CURRENT_LIST_DIR}/test_config.c unit qc_frontend)
