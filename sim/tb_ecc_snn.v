// Test wrapper of the generated ecc_snn (generated with --trace): the network bench's source, sink and
// monitor in Verilog, so that no Python runs per clock cycle (TOOLCHAIN 7).
//
// Python (cocotb, sim/network_tb.py) only drives `clk` and waits for `done`; everything else comes
// from plusargs and files, and everything seen goes to one text file read after the run:
//   +words=FILE    $readmemh of the input words of every image, one after the other (at most WORDS):
//                  bits IN_W-1..0 the input payload (a pixel, channel-major, IN_W-bit two's complement;
//                  or with EVENT_INPUT defined an event word, rtl_gen/event_input.py), bit IN_W set if
//                  an idle gap may be inserted before the word (see "Cycle counts" below)
//   +lengths=FILE  $readmemh of one word per image: its number of input words (NPIX for images)
//   +nimages=K     number of images to stream back to back
//   +nwords=W      number of words in +words
//   +out=FILE      the record (below)
//   +seed=S        seed of the idle/back-pressure generator (re-seeded per image with the image number,
//                  so one image rerun alone sees the same gaps)
//   +first=F       number of the first image (for the seeds and the record)
//   +idle=N        an input gap is inserted before a pixel with probability N/256 (and repeats so)
//   +stall=N       result ready is low in a cycle with probability N/256
//   +max_cycles=C  watchdog per image
//
// Record lines (hex fields):
//   T <trace payload>                              every trace word (the trace stream is always ready)
//   R <result payload>                             every result handshake
//   C <image> <cycles> <input stalls> <output stalls>   after the class word's handshake
//   X <image> <cycles>                             watchdog expired (the run stops)
//
// Cycle counts: `cycles` counts from the first cycle of the image's clear phase (the first cycle after
// reset, or the cycle after the previous class handshake) to the class handshake inclusive, exactly
// as ecc_hw.cycle_model does. Input stalls are cycles with pixels ready and not valid; output stalls
// cycles with result valid and not ready. Each such cycle delays the rest of the schedule by exactly
// one cycle (the controller holds its state), so `cycles - input stalls - output stalls` equals the
// gap-free count. That holds for an input gap only while a word that starts a fan-out walk is still
// to come in its load phase (the image; with event input the frame): the last walk sets the end of the
// phase, and after it a gap may overlap the synapse pipeline's drain, so Python allows no gaps there
// (bit IN_W of the words).
`timescale 1ns/1ps
module tb_ecc_snn #(
    parameter IN_W = 8,
    parameter RESULT_W = 28,
    parameter TRACE_W = 29,
    parameter CLASS_BIT = 27,
    parameter WORDS = 784 * 1024,
    parameter MAX_IMAGES = 1024
) (
    input wire clk /* verilator public_flat_rw */
);
    reg rst = 1'b1;
    reg done /* verilator public_flat_rd */ = 1'b0;
    reg [3:0] reset_count = 4'd0;

    reg [IN_W:0] words [0:WORDS-1];
    reg [31:0] lengths [0:MAX_IMAGES-1];
    integer nimages, nwords, idle, stall, seed, max_cycles, first, fd;
    reg [1023:0] path;

    reg in_valid = 1'b0;
    reg [IN_W-1:0] in_data = {IN_W{1'b0}};
    wire in_ready;
    wire out_valid;
    reg out_ready = 1'b0;
    wire [RESULT_W-1:0] out_data;
    wire trace_valid;
    wire [TRACE_W-1:0] trace_data;

    ecc_snn dut (
        .clk(clk), .rst(rst),
`ifdef EVENT_INPUT
        .events__valid(in_valid), .events__ready(in_ready), .events__payload(in_data),
`else
        .pixels__valid(in_valid), .pixels__ready(in_ready), .pixels__payload(in_data),
`endif
        .result__valid(out_valid), .result__ready(out_ready), .result__payload(out_data),
        .trace__valid(trace_valid), .trace__payload(trace_data)
    );

    initial begin
        if (!$value$plusargs("nimages=%d", nimages)) nimages = 1;
        if (!$value$plusargs("idle=%d", idle)) idle = 0;
        if (!$value$plusargs("stall=%d", stall)) stall = 0;
        if (!$value$plusargs("seed=%d", seed)) seed = 1;
        if (!$value$plusargs("first=%d", first)) first = 0;
        if (!$value$plusargs("max_cycles=%d", max_cycles)) max_cycles = 100000000;
        if (!$value$plusargs("nwords=%d", nwords)) nwords = 1;
        if ($value$plusargs("words=%s", path)) $readmemh(path, words, 0, nwords - 1);
        if ($value$plusargs("lengths=%s", path)) $readmemh(path, lengths, 0, nimages - 1);
        if (!$value$plusargs("out=%s", path)) path = "bench_record.txt";
        fd = $fopen(path, "w");
    end

    // xorshift32, re-seeded at the start of every image
    reg [31:0] rng = 32'h1;
    function [31:0] xorshift(input [31:0] x);
        reg [31:0] y;
        begin
            y = x ^ (x << 13);
            y = y ^ (y >> 17);
            xorshift = y ^ (y << 5);
        end
    endfunction
    function [31:0] seed_of(input integer s, input integer image);
        reg [31:0] v;
        begin
            v = s * 32'h9E3779B1 + image * 32'h85EBCA77 + 32'h27D4EB2F;
            seed_of = (v == 0) ? 32'h1 : v;
        end
    endfunction

    integer image = 0;        // image being streamed
    integer pixel = 0;        // next word of the image to present
    integer base = 0;         // the image's first word
    integer cycles = 0;       // cycles of the current image so far
    integer in_stalls = 0;
    integer out_stalls = 0;
    reg [31:0] r;
    reg start = 1'b1;         // first cycle of an image: re-seed

    always @(posedge clk) begin
        if (rst) begin
            reset_count <= reset_count + 1;
            if (reset_count == 4'd3) rst <= 1'b0;
                    end else if (!done) begin
            r = start ? seed_of(seed, first + image) : rng;
            r = xorshift(r);
            rng <= r;
            start <= 1'b0;
            cycles = cycles + 1;
            if (in_ready && !in_valid) in_stalls = in_stalls + 1;
            if (out_valid && !out_ready) out_stalls = out_stalls + 1;
            if (trace_valid) $fwrite(fd, "T %h\n", trace_data);
            // input: hold a presented word until its handshake, then maybe idle before the next
            if (in_valid && in_ready) pixel = pixel + 1;
            if (!in_valid || in_ready) begin
                if (pixel < lengths[image] && !(words[base + pixel][IN_W] && r[7:0] < idle)) begin
                    in_valid <= 1'b1;
                    in_data <= words[base + pixel][IN_W-1:0];
                end else begin
                    in_valid <= 1'b0;
                end
            end
            // output: random back-pressure
            out_ready <= !(r[15:8] < stall);
            if (out_valid && out_ready) begin
                $fwrite(fd, "R %h\n", out_data);
                if (out_data[CLASS_BIT]) begin
                    $fwrite(fd, "C %h %h %h %h\n", first + image, cycles, in_stalls, out_stalls);
                    base = base + lengths[image];
                    image = image + 1;
                    pixel = 0;
                    cycles = 0;
                    in_stalls = 0;
                    out_stalls = 0;
                    start <= 1'b1;
                    in_valid <= 1'b0;
                    if (image == nimages) begin
                        $fclose(fd);
                        done <= 1'b1;
                    end
                end
            end
            if (cycles >= max_cycles && !done) begin
                $fwrite(fd, "X %h %h\n", first + image, cycles);
                $fclose(fd);
                done <= 1'b1;
            end
        end
    end
endmodule
