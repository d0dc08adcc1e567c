module sealant.local/pause

go 1.22
