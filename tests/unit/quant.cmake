# Quantization numerics (quant/) and the packed-weight kernels (runtime/qlinear.c).
# -ffp-contract=off: the GPTQ test compares against a loop written in the test
# bit for bit, so neither side may fuse a multiply and an add.
qc_c_test(test_quant_pack ${CMAKE_CURRENT_LIST_DIR}/test_quant_pack.c unit qc_quant)
qc_c_test(test_quant_gptq ${CMAKE_CURRENT_LIST_DIR}/test_quant_gptq.c unit qc_quant ${OPENBLAS_SHARED})
target_compile_options(test_quant_gptq PRIVATE -ffp-contract=off)
target_include_directories(test_quant_gptq PRIVATE ${CBLAS_INCLUDE})
qc_c_test(test_quant_qlinear ${CMAKE_CURRENT_LIST_DIR}/test_quant_qlinear.c unit qrt_dev qc_quant ${OPENBLAS_SHARED})
target_include_directories(test_quant_qlinear PRIVATE ${CMAKE_SOURCE_DIR}/runtime ${CBLAS_INCLUDE})
