"""jaxgen.sbi"""
