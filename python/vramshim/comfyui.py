"""The switch in ComfyUI's settings that puts the stock VAE Decode nodes through the bundled
decoder (docs/hooks.md, "ComfyUI"). integrations/comfyui/ calls attach() when ComfyUI loads it.

The node's web extension (integrations/comfyui/web/vramshim.js) registers two settings, which
ComfyUI's frontend saves in the user's settings file, USER_DIR/default/comfy.settings.json
(USER_DIR: folder_paths.get_user_directory(), ComfyUI/user unless --user-directory):

    "vramshim.SubstituteStockDecode": "off" | "exact" | "blend"   (absent: off)
    "vramshim.StockDecodeBudget": "2GiB"                          (absent or empty: the default)

The file is read when ComfyUI loads the node and again for every prompt queued (an on-prompt
handler of ComfyUI's server), so a change in the settings panel applies from the next prompt.
While the mode is exact or blend, vramshim.decode is installed with it: comfy.sd.VAE.decode and
decode_tiled, which the stock VAE Decode and VAE Decode (Tiled) nodes call, decode through the
bundled decoder. A file that cannot be read or a field that is not valid turns the
substitution off after one `vramshim:` line naming the file and the field. `vramshim run
--decode` (VRAMSHIM_DECODE) takes precedence over the setting."""
import json
import os
import threading

from . import _shim, decode

MODE_SETTING = "vramshim.SubstituteStockDecode"
BUDGET_SETTING = "vramshim.StockDecodeBudget"
MODES = ("off",) + decode.MODES


class SettingsError(Exception):
    """The settings file or one of its fields is not usable; the message names both."""


def settings_file():
    """ComfyUI's settings file of the default user."""
    import folder_paths
    return os.path.join(folder_paths.get_user_directory(), "default", "comfy.settings.json")


def read_settings(path):
    """(mode, budget or None) from the settings file at `path`; ("off", None) when there is
    none (the user never changed a setting). Raises SettingsError."""
    try:
        with open(path, encoding="utf-8") as f:
            settings = json.load(f)
    except FileNotFoundError:
        return "off", None
    except (OSError, UnicodeDecodeError) as e:
        raise SettingsError("%s: cannot be read: %s" % (path, e))
    except ValueError as e:  # json.JSONDecodeError names the line and column
        raise SettingsError("%s: not JSON: %s" % (path, e))
    if not isinstance(settings, dict):
        raise SettingsError("%s: a JSON %s where ComfyUI writes an object" % (
            path, type(settings).__name__))
    mode = settings.get(MODE_SETTING, "off")
    if mode not in MODES:
        raise SettingsError("%s: %s is %s, not one of %s" % (
            path, MODE_SETTING, json.dumps(mode), ", ".join(MODES)))
    budget = settings.get(BUDGET_SETTING, "")
    if not isinstance(budget, str):
        raise SettingsError("%s: %s is %s, not a size string such as \"2GiB\"" % (
            path, BUDGET_SETTING, json.dumps(budget)))
    budget = budget.strip() or None
    if budget is not None:
        try:
            decode.parse_size(budget)
        except ValueError as e:
            raise SettingsError("%s: %s: %s" % (path, BUDGET_SETTING,
                                                str(e).replace("budget: ", "", 1)))
    return mode, budget


class StockDecode:
    """Owns the vramshim.decode handle that the setting turns on; apply() brings it in line with
    the settings file, logging each change of state once."""

    def __init__(self, path):
        self.path = path
        self._lock = threading.Lock()
        self._state = ("off", None, None)  # (mode, budget, reason it is off or ignored)
        self._handle = None

    def apply(self):
        try:
            mode, budget = read_settings(self.path)
            reason = None
        except SettingsError as e:
            mode, budget, reason = "off", None, "%s; the stock VAE Decode nodes decode " \
                                                "unchanged" % e
        forced = os.environ.get("VRAMSHIM_DECODE", "off")
        if mode != "off" and forced != "off":
            reason = "%s %s is not applied: VRAMSHIM_DECODE=%s (vramshim run --decode) " \
                     "takes precedence" % (MODE_SETTING, mode, forced)
        with self._lock:
            if (mode, budget, reason) == self._state:
                return
            self._state = (mode, budget, reason)
            if self._handle is not None:
                self._handle.remove()
                self._handle = None
            if reason is not None:
                _shim.log("warn" if mode == "off" else "info", reason)
            elif mode != "off":
                self._handle = decode.install(mode, budget)
                _shim.log("info", "decode substitution on for the stock VAE Decode nodes "
                          "(%s, %s = %s%s)" % (self.path, MODE_SETTING, mode,
                                               ", budget %s" % budget if budget else ""))
            else:
                _shim.log("info", "decode substitution off for the stock VAE Decode nodes "
                          "(%s)" % self.path)

    def on_prompt(self, json_data):
        """ComfyUI's on-prompt handler: the settings apply from the prompt being queued (and
        to the later decodes of a prompt still running)."""
        try:
            self.apply()
        except Exception as e:  # a prompt is never refused because of vramshim
            _shim.log("error", "ComfyUI settings: %s: %s" % (type(e).__name__, e))
        return json_data


def attach():
    """At ComfyUI's load of the node: applies the settings now and for every prompt."""
    from server import PromptServer
    stock = StockDecode(settings_file())
    stock.apply()
    PromptServer.instance.add_on_prompt_handler(stock.on_prompt)
    return stock
