# LLaMA loading, tokenizer, forward, generation, perplexity
