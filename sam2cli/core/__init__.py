"""The leaf under every other package: plain data types and geometry shared by io and engine.

`results`: Results, Masks, Boxes, masks_to_boxes, mask_to_polygon. `prompts`: the prompt record
(ObjectPrompt) and its one validator (normalize_prompts). Nothing here imports another sam2cli
package except `sam2cli.errors`.
"""
