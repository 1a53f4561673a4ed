# LLaMA backward, LoRA training loop
