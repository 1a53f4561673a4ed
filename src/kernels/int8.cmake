# INT8 products, LLM.int8(), dense fp32
