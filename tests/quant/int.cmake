# tests of INT8/INT4/functional API
