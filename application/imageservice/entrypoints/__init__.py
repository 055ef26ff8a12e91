"""The ways the service is started, in one place (docs/DESIGN.md "Architecture"):

- ``cli``: the ``imageservice`` command (serve, worker, token, sweep, setup, client);
- ``worker``: the local job worker, and the job threads ``serve`` runs beside the web app;
- ``sqs_worker``: aws mode's ``imageservice worker``, playing Lambda's SQS event source;
- ``aws_processor``: what the Lambda does with an event (``lambda/handler.py`` is its thin
  handler; the SQS worker runs the same code).

They compose the service through ``bootstrap.py`` / ``composition.py``; nothing imports them
but each other and the handler.
"""
