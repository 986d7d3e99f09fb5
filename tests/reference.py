"""Plain-loop references, written from docs/arithmetic.md section 3 without any of the package's vector code."""
from __future__ import annotations



def _pooled_value(spikes_map, layer, c, y, x):
    """Sum of the input map over pool cell (y, x) of channel c (or the plain value without a pool)."""
    if layer.pool is None:
        return int(spikes_map[c][y][x])
    (kh, kw), (sh, sw) = layer.pool.kernel, layer.pool.stride
    return sum(int(spikes_map[c][y * sh + i][x * sw + j]) for i in range(kh) for j in range(kw))


def linear_loop(layer, input_map) -> list[int]:
    """One layer's integer linear map (without bias), neuron by neuron, tap by tap."""
    channels, height, width = layer.input_shape
    if layer.pool is not None:
        height = (height - layer.pool.kernel[0]) // layer.pool.stride[0] + 1
        width = (width - layer.pool.kernel[1]) // layer.pool.stride[1] + 1
    out = []
    if layer.kind == "dense":
        flat = [_pooled_value(input_map, layer, c, y, x)
                for c in range(channels) for y in range(height) for x in range(width)]
        for o in range(layer.output_shape[0]):
            out.append(sum(int(layer.weight[o][i]) * flat[i] for i in range(len(flat))))
        return out
    top, left, _, _ = layer.padding
    out_channels, out_h, out_w = layer.output_shape
    for o in range(out_channels):
        for oy in range(out_h):
            for ox in range(out_w):
                total = 0
                for c in range(channels):
                    for i in range(layer.kernel[0]):
                        for j in range(layer.kernel[1]):
                            y = oy * layer.stride[0] + i * layer.dilation[0] - top
                            x = ox * layer.stride[1] + j * layer.dilation[1] - left
                            if 0 <= y < height and 0 <= x < width:
                                total += int(layer.weight[o][c][i][j]) * _pooled_value(input_map, layer, c, y, x)
                out.append(total)
    return out


def golden_loop(params, image, timesteps):
    """docs/arithmetic.md 3 literally: returns (prediction, final V_N list, spikes[layer][t] lists of 0/1)."""
    def as_map(values, shape):
        c, h, w = shape
        return [[[values[(ci * h + y) * w + x] for x in range(w)] for y in range(h)] for ci in range(c)]

    first = params.layers[0]
    per_channel = first.output_shape[1] * first.output_shape[2]
    constant = [v + int(first.bias[i // per_channel])
                for i, v in enumerate(linear_loop(first, image.tolist()))]
    membranes = [[0] * layer.neurons for layer in params.layers]
    counters = [0] * len(params.layers)
    if params.tre_mode == "initial":
        for n, layer in enumerate(params.spiking_layers):
            membranes[n] = [layer.tre_charge] * layer.neurons
    spikes = [[] for _ in params.spiking_layers]
    for _ in range(timesteps):
        previous = None
        for n, layer in enumerate(params.layers):
            if n == 0:
                current = constant
            else:
                raw = linear_loop(layer, as_map(previous, layer.input_shape))
                per = layer.output_shape[1] * layer.output_shape[2]
                current = [v + int(layer.bias[i // per]) for i, v in enumerate(raw)]
            if not layer.spiking:
                membranes[n] = [v + z for v, z in zip(membranes[n], current)]
                continue
            charge = 0
            if params.tre_mode == "spread":
                q, r = divmod(layer.tre_charge, timesteps)
                charge = q + (1 if counters[n] + r >= timesteps else 0)
                counters[n] = (counters[n] + r) % timesteps
            fired = []
            for i in range(layer.neurons):
                v = membranes[n][i] + current[i] + charge
                s = 1 if v >= layer.threshold else 0
                membranes[n][i] = v - layer.threshold * s
                fired.append(s)
            spikes[n].append(fired)
            previous = fired
    output = membranes[-1]
    prediction = max(range(len(output)), key=lambda i: (output[i], -i))
    return prediction, output, spikes
