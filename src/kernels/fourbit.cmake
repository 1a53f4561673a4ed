# NF4/FP4/INT4 fused products
