# tests of int8 products
