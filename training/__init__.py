"""humocon_hf.training"""
