# Runtime pieces without a model: the sampler (runtime/sampler.c).
qc_c_test(test_sampler ${CMAKE_CURRENT_LIST_DIR}/test_sampler.c unit qrt_dev)
target_include_directories(test_sampler PRIVATE ${CMAKE_SOURCE_DIR}/runtime)
