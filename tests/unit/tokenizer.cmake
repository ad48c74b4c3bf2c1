# Tokenizer tests: tokenizer.json -> blob (frontend) -> encode/decode (libqrt).
qc_c_test(test_tokenizer_wikitext ${CMAKE_CURRENT_LIST_DIR}/test_tokenizer_wikitext.c unit qc_frontend qrt_dev)
qc_c_test(test_tokenizer ${CMAKE_CURRENT_LIST_DIR}/test_tokenizer.c unit qc_frontend qrt_dev)
# Includes runtime/tokenizer.c itself to reach the pre-tokenizer's statics.
qc_c_test(test_tokenizer_pretok ${CMAKE_CURRENT_LIST_DIR}/test_tokenizer_pretok.c unit)
qc_c_test(test_chat_template ${CMAKE_CURRENT_LIST_DIR}/test_chat_template.c unit qc_frontend qrt_dev)
