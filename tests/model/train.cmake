# model training tests
