"""jaxgen.boed"""
