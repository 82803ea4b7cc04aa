"""Stand-in for ComfyUI's server module (tests only), following comfyanonymous/ComfyUI's
server.py of mid-2025 (v0.3.4x): PromptServer.instance exists before custom nodes load;
add_on_prompt_handler(f) appends f, and trigger_on_prompt(json_data), which POST /prompt calls
before it validates and queues the prompt, passes json_data through every handler in order
(a handler that raises is logged and skipped)."""
import logging


class PromptServer:
    instance = None

    def __init__(self):
        PromptServer.instance = self
        self.on_prompt_handlers = []

    def add_on_prompt_handler(self, handler):
        self.on_prompt_handlers.append(handler)

    def trigger_on_prompt(self, json_data):
        for handler in self.on_prompt_handlers:
            try:
                json_data = handler(json_data)
            except Exception:
                logging.exception("on_prompt handler failed")
        return json_data


PromptServer()
