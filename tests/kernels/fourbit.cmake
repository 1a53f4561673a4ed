# tests of 4-bit products
