// CloudFront Function (runtime cloudfront-js-2.0), viewer request, on the /s/* behaviour.
//
// Browsers send many different Accept headers, but a rendition's format depends on only three
// answers (docs/RENDITIONS.md): "avif" when image/avif is accepted, else "webp" when image/webp
// is, else "other". This function writes that answer to x-accept-class, which the cache policy
// keys on instead of Accept, so every browser shares one of three cache entries per rendition.
// Whatever a viewer sent as x-accept-class is overwritten; nothing else is changed (the origin
// still sees Accept, and negotiates from it with the same rules).
//
// The rules are those of accept_class in application/imageservice/core/renditions.py:
// elements split on ",", parameters on ";", spaces and tabs trimmed, types compared in lower
// case; an element whose q breaks RFC 9110's grammar accepts nothing; a type is accepted when
// it is named with q above 0 and never with q=0; wildcards (image/*, */*) do not count.
// tests/unit/test_cloudfront_function.py holds both to the same answers for real browsers.

var QVALUE = /^(0(\.[0-9]{0,3})?|1(\.0{0,3})?)$/;

function trimSpace(text) {
    return text.replace(/^[ \t]+|[ \t]+$/g, "");
}

// The lowest q each media range is named with.
function lowestQ(header) {
    var lowest = {};
    var elements = header.split(",");
    for (var i = 0; i < elements.length; i++) {
        var parts = elements[i].split(";");
        var range = trimSpace(parts[0]).toLowerCase();
        if (!range) {
            continue;
        }
        var q = 1;
        for (var j = 1; j < parts.length; j++) {
            var eq = parts[j].indexOf("=");
            var name = trimSpace(eq < 0 ? parts[j] : parts[j].slice(0, eq)).toLowerCase();
            var value = eq < 0 ? "" : trimSpace(parts[j].slice(eq + 1));
            if (name === "q") {
                q = QVALUE.test(value) ? parseFloat(value) : null;
            }
        }
        if (q !== null && (!(range in lowest) || q < lowest[range])) {
            lowest[range] = q;
        }
    }
    return lowest;
}

function acceptClass(header) {
    var lowest = lowestQ(header || "");
    if (lowest["image/avif"] > 0) {
        return "avif";
    }
    if (lowest["image/webp"] > 0) {
        return "webp";
    }
    return "other";
}

function handler(event) {
    var request = event.request;
    var accept = request.headers.accept;
    var header = "";
    if (accept && accept.multiValue) {
        header = accept.multiValue.map(function (entry) { return entry.value; }).join(",");
    } else if (accept) {
        header = accept.value;
    }
    request.headers["x-accept-class"] = { value: acceptClass(header) };
    return request;
}
