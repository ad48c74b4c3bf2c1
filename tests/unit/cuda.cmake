# NVRTC compiles every kernel for every default target (no GPU needed;
# skipped when libnvrtc cannot be loaded).
qc_c_test(test_cuda_nvrtc ${CMAKE_CURRENT_LIST_DIR}/test_cuda_nvrtc.c unit qc_cuda qrt_dev)
target_include_directories(test_cuda_nvrtc PRIVATE ${CMAKE_SOURCE_DIR}/runtime)
set_tests_properties(test_cuda_nvrtc PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 900)
if(QC_ENABLE_CUDA)
  target_compile_definitions(test_cuda_nvrtc PRIVATE QC_WITH_CUDA)
endif()
# runtime/cuda.c's choice of kernels for a decode step, on a fake driver (no GPU, no NVRTC)
qc_c_test(test_cuda_dispatch ${CMAKE_CURRENT_LIST_DIR}/test_cuda_dispatch.c unit qc_cuda qrt_dev)
target_include_directories(test_cuda_dispatch PRIVATE ${CMAKE_SOURCE_DIR}/runtime)
