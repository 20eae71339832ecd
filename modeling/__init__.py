"""humocon_hf.modeling"""
