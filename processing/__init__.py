"""humocon_hf.processing"""
