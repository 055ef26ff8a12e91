/* A BlurHash decoder (https://blurha.sh, algorithm by Wolt): a short string -> a blurred
   placeholder painted on a small canvas that CSS stretches until the real image arrives. */
const CHARS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~";

function decode83(text) {
  var value = 0;
  for (var i = 0; i < text.length; i++) {
    var digit = CHARS.indexOf(text.charAt(i));
    if (digit < 0) throw new Error("blurhash: bad character");
    value = value * 83 + digit;
  }
  return value;
}

function sRGBToLinear(value) {
  var v = value / 255;
  return v <= 0.04045 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
}

function linearTosRGB(value) {
  var v = Math.max(0, Math.min(1, value));
  return v <= 0.0031308 ? Math.round(v * 12.92 * 255 + 0.5) : Math.round((1.055 * Math.pow(v, 1 / 2.4) - 0.055) * 255 + 0.5);
}

function signPow(value, exp) {
  return (value < 0 ? -1 : 1) * Math.pow(Math.abs(value), exp);
}

function decodeDC(value) {
  return [sRGBToLinear(value >> 16), sRGBToLinear((value >> 8) & 255), sRGBToLinear(value & 255)];
}

function decodeAC(value, maximum) {
  var r = Math.floor(value / (19 * 19)), g = Math.floor(value / 19) % 19, b = value % 19;
  return [signPow((r - 9) / 9, 2) * maximum, signPow((g - 9) / 9, 2) * maximum, signPow((b - 9) / 9, 2) * maximum];
}

/** RGBA pixels (width x height) for a hash; throws on a malformed hash. */
export function decode(hash, width, height, punch) {
  if (!hash || hash.length < 6) throw new Error("blurhash: too short");
  var sizeFlag = decode83(hash.charAt(0));
  var numY = Math.floor(sizeFlag / 9) + 1, numX = (sizeFlag % 9) + 1;
  if (hash.length !== 4 + 2 * numX * numY) throw new Error("blurhash: wrong length");
  var maximum = (decode83(hash.charAt(1)) + 1) / 166 * (punch || 1);
  var colors = [decodeDC(decode83(hash.substring(2, 6)))];
  for (var c = 1; c < numX * numY; c++) {
    colors.push(decodeAC(decode83(hash.substring(4 + c * 2, 6 + c * 2)), maximum));
  }
  var pixels = new Uint8ClampedArray(width * height * 4);
  for (var y = 0; y < height; y++) {
    for (var x = 0; x < width; x++) {
      var r = 0, g = 0, b = 0;
      for (var j = 0; j < numY; j++) {
        var basisY = Math.cos(Math.PI * y * j / height);
        for (var i = 0; i < numX; i++) {
          var basis = Math.cos(Math.PI * x * i / width) * basisY;
          var color = colors[i + j * numX];
          r += color[0] * basis; g += color[1] * basis; b += color[2] * basis;
        }
      }
      var p = 4 * (x + y * width);
      pixels[p] = linearTosRGB(r); pixels[p + 1] = linearTosRGB(g); pixels[p + 2] = linearTosRGB(b); pixels[p + 3] = 255;
    }
  }
  return pixels;
}

/** Paint a hash onto a canvas at the canvas's own (small) size. Returns false if it cannot. */
export function paint(canvas, hash) {
  if (!canvas || !hash) return false;
  try {
    var w = canvas.width || 32, h = canvas.height || 32;
    var context = canvas.getContext("2d");
    var image = context.createImageData(w, h);
    image.data.set(decode(hash, w, h));
    context.putImageData(image, 0, 0);
    return true;
  } catch (e) {
    return false;
  }
}
