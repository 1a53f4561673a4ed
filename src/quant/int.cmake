# INT8, INT4, qtensor object, functional API, statistics
