// A stand-in for github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/vpc, which the Go module
// proxy this project reaches does not serve (403). flanneld imports it only for its tencent-vpc
// backend; scripts/kube-images.sh builds flanneld with this module in its place (a replace
// directive in its wrapper module), so every other backend is flannel's own code, unchanged.
module github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/vpc

go 1.22
