"""playworld.pipeline: the whole pipeline end to end (`make demo`) and its report.

It sits above every other package (it runs play, world models, policies and deployment in turn),
so nothing else imports it.
"""
