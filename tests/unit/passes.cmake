qc_c_test(test_convert unit/test_convert.c unit qc_quant)
