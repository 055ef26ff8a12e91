/* The fields of a conversion (templates/_convert_fields.html), wherever they are: the image page's
   convert card and the gallery's batch dialog. Their live outputs, and their values as the
   convert call's body. */

import { ApiError } from "./api.js";
import { config } from "./config.js";

/** Keep the quality and opacity outputs of ``form`` (fields named ``prefix``-...) in step. */
export function startConvertFields(form, prefix) {
  const quality = form.elements.quality;
  const opacity = form.elements.watermark_opacity;
  quality.addEventListener("input", () => { document.getElementById(prefix + "-quality-value").textContent = quality.value; });
  opacity.addEventListener("input", () => {
    document.getElementById(prefix + "-watermark-opacity-value").textContent = opacity.value + "%";
  });
}

function sizeField(form, name) {
  const field = form.elements[name];
  const text = field.value.trim();
  if (!text) return null;
  const value = Number(text);
  const max = config.convert_max_edge;
  if (!Number.isInteger(value) || value < 1 || value > max) {
    throw new ApiError(400, "invalid_parameter", "The " + name + " must be a whole number from 1 to " + max + ".");
  }
  return value;
}

/** The convert call's body the form asks for; throws ApiError on a size out of bounds. */
export function conversionBody(form) {
  const body = { format: form.elements.format.value, fit: form.elements.fit.value,
                 quality: Number(form.elements.quality.value) };
  const width = sizeField(form, "width"), height = sizeField(form, "height");
  if (width) body.width = width;
  if (height) body.height = height;
  const text = form.elements.watermark_text.value.trim();
  if (text) {
    body.watermark = { text: text, position: form.elements.watermark_position.value,
                       opacity: Number(form.elements.watermark_opacity.value) / 100 };
  }
  return body;
}
