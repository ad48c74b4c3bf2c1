# AWQ searches (quant/awq.c) and the W8A8 kernels (runtime/int8.c vs quant/int8.c).
qc_c_test(test_awq ${CMAKE_CURRENT_LIST_DIR}/test_awq.c unit qc_quant)
qc_c_test(test_int8 ${CMAKE_CURRENT_LIST_DIR}/test_int8.c unit qrt_dev qc_quant ${OPENBLAS_SHARED})
target_include_directories(test_int8 PRIVATE ${CMAKE_SOURCE_DIR}/runtime ${CBLAS_INCLUDE})
qc_c_test(test_awq_fold ${CMAKE_CURRENT_LIST_DIR}/test_awq_fold.c unit qc_passes)
