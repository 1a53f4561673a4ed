# NF4/FP4, blockwise8, double quant, code tables
