"""jaxgen.flows"""
