# GGUF input: reader, dequantization, metadata -> config / tokenizer, and the
# GGUF graph against the safetensors one (frontend/gguf.c, gguf_meta.c, model.c).
qc_c_test(test_gguf ${CMAKE_CURRENT_LIST_DIR}/test_gguf.c unit qc_frontend qrt_dev)
# test_gguf checks qc_gguf_hash against a one-shot XXH3-128 of the file.
target_include_directories(test_gguf PRIVATE ${XXHASH_INCLUDE})
target_compile_definitions(test_gguf PRIVATE XXH_INLINE_ALL)
