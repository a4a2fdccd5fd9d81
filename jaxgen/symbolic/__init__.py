"""jaxgen.symbolic"""
