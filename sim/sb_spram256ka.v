// Behavioural model of the iCE40 UP5K single-port RAM SB_SPRAM256KA (16,384 x 16 bits), for the
// benches of designs generated with memory="spram". One access per clock: with WREN the nibbles
// selected by MASKWREN are written and DATAOUT holds; without it DATAOUT gets the word at ADDRESS
// (registered read). Standby, sleep and power-off hold DATAOUT (the design never uses them). The
// words start at zero in simulation (the design clears every word it reads before using it).
`timescale 1ns / 1ps
module SB_SPRAM256KA (
    input  wire [13:0] ADDRESS,
    input  wire [15:0] DATAIN,
    input  wire [3:0]  MASKWREN,
    input  wire        WREN,
    input  wire        CHIPSELECT,
    input  wire        CLOCK,
    input  wire        STANDBY,
    input  wire        SLEEP,
    input  wire        POWEROFF,
    output reg  [15:0] DATAOUT
);
    reg [15:0] words [0:16383];
    integer i;
    initial begin
        for (i = 0; i < 16384; i = i + 1) words[i] = 16'h0000;
        DATAOUT = 16'h0000;
    end
    always @(posedge CLOCK) begin
        if (CHIPSELECT && !STANDBY && !SLEEP && POWEROFF) begin
            if (WREN) begin
                if (MASKWREN[0]) words[ADDRESS][3:0]   <= DATAIN[3:0];
                if (MASKWREN[1]) words[ADDRESS][7:4]   <= DATAIN[7:4];
                if (MASKWREN[2]) words[ADDRESS][11:8]  <= DATAIN[11:8];
                if (MASKWREN[3]) words[ADDRESS][15:12] <= DATAIN[15:12];
            end else begin
                DATAOUT <= words[ADDRESS];
            end
        end
    end
endmodule
