"""Headless queue client for ComfyUI (standard library only, Python 3.10+): validates an API-format graph
against a server's ``/object_info``, queues it, shows progress and the TaylorSeer cache reports from the
websocket, downloads the outputs. Run ``python -m taylor_queue --help``.

It imports nothing from the node pack, ComfyUI or torch, so it runs from any Python, on any machine that
reaches the server.
"""
