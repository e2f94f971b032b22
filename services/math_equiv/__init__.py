"""math_equiv reward service: is the completion's final answer mathematically the reference?"""
