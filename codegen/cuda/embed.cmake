# cmake -DIN=kernels.cu -DOUT=kernels_cu.c -DSYM=qc_cuda_kernels_cu -P embed.cmake
# Writes IN as a C byte array SYM (plus SYM_len): the device source travels
# inside qcc, so qcc needs no file beside it at run time.
file(READ "${IN}" hex HEX)
string(LENGTH "${hex}" n)
math(EXPR bytes "${n} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," body "${hex}")
string(REGEX REPLACE "(0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,)" "\\1\n" body "${body}")
file(WRITE "${OUT}.tmp"
  "/* generated from codegen/cuda/kernels.cu by embed.cmake: do not edit */\n"
  "#include <stddef.h>\n"
  "extern const unsigned char ${SYM}[];\n"
  "extern const size_t ${SYM}_len;\n"
  "const unsigned char ${SYM}[] = {\n${body}0x00};\n"
  "const size_t ${SYM}_len = ${bytes};\n")
file(RENAME "${OUT}.tmp" "${OUT}")
