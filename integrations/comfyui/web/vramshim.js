// vramshim's settings in ComfyUI's settings panel (category "vramshim"). The frontend saves them
// in the user's comfy.settings.json; the node package reads that file when ComfyUI starts and
// for every prompt queued (python/vramshim/comfyui.py), so a change applies from the next prompt.
import { app } from "../../scripts/app.js";

app.registerExtension({
    name: "vramshim.StockDecode",
    settings: [
        {
            id: "vramshim.SubstituteStockDecode",
            category: ["vramshim", "Decode", "Substitute"],
            name: "Substitute in the stock VAE Decode nodes",
            tooltip: "exact: VAE Decode and VAE Decode (Tiled) decode through vramshim's tiled " +
                "decoder, equal to the untiled decode, within the budget below; blend: " +
                "cross-faded tiles; off: ComfyUI's own decode. Applies from the next prompt.",
            type: "combo",
            options: ["off", "exact", "blend"],
            defaultValue: "off",
        },
        {
            id: "vramshim.StockDecodeBudget",
            category: ["vramshim", "Decode", "Budget"],
            name: "Working-memory budget of the substituted decode",
            tooltip: "A size such as 2GiB or 512MiB; empty: the memory free on the device less " +
                "a margin.",
            type: "text",
            defaultValue: "",
        },
    ],
});
