"""explorer: the Qt desktop application of Quant Explorer."""
