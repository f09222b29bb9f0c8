# (filled in by the lora_nf4 work)
