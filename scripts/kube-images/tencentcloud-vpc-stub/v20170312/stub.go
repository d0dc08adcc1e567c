// Package v20170312 declares the part of Tencent Cloud's VPC API that flannel's tencent-vpc backend
// uses; every call fails, so that backend reports that it is not in this build. The real SDK
// module is not served by the Go module proxy this project reaches.
package v20170312

import "errors"

// ErrNotBuilt is what every call returns.
var ErrNotBuilt = errors.New("flannel's tencent-vpc backend is not in this build: the Go module proxy does not serve github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/vpc (sealant scripts/kube-images.sh); use host-gw or vxlan")

type Client struct{}

func NewClientWithSecretId(secretID, secretKey, region string) (*Client, error) {
	return nil, ErrNotBuilt
}

type Filter struct {
	Name   *string
	Values []*string
}

type Route struct {
	DestinationCidrBlock *string
	GatewayType          *string
	GatewayId            *string
	RouteId              *uint64
	RouteType            *string
	Enabled              *bool
}

type RouteTable struct {
	RouteTableId *string
	RouteSet     []*Route
}

type DescribeRouteTablesRequest struct {
	Filters []*Filter
}

type DescribeRouteTablesResponse struct {
	Response *struct {
		RouteTableSet []*RouteTable
		RequestId     *string
	}
}

type DeleteRoutesRequest struct {
	RouteTableId *string
	Routes       []*Route
}

type DeleteRoutesResponse struct{}

type CreateRoutesRequest struct {
	RouteTableId *string
	Routes       []*Route
}

type CreateRoutesResponse struct{}

func NewDescribeRouteTablesRequest() *DescribeRouteTablesRequest {
	return &DescribeRouteTablesRequest{}
}
func NewDeleteRoutesRequest() *DeleteRoutesRequest { return &DeleteRoutesRequest{} }
func NewCreateRoutesRequest() *CreateRoutesRequest { return &CreateRoutesRequest{} }

func (c *Client) DescribeRouteTables(*DescribeRouteTablesRequest) (*DescribeRouteTablesResponse, error) {
	return nil, ErrNotBuilt
}

func (c *Client) DeleteRoutes(*DeleteRoutesRequest) (*DeleteRoutesResponse, error) {
	return nil, ErrNotBuilt
}

func (c *Client) CreateRoutes(*CreateRoutesRequest) (*CreateRoutesResponse, error) {
	return nil, ErrNotBuilt
}
